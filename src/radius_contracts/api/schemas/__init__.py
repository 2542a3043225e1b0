"""Request and response models of the management API (XCreate / XUpdate / XPublic / Page)."""
