"""RADIUS worker processes: Access-Requests answered on every core (``[radius] workers``)."""
