"""The LUNA push: report USED PAY+ top-ups to LUNA OASYS as exactly one work order each, and follow them."""
