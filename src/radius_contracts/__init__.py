"""radius-contracts: a RADIUS AAA daemon for ISPs, driven by subscribers' contracts."""

__version__ = "0.1.0"
