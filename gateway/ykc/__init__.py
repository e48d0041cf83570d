"""云快充 (YKC) platform protocol V1.5/V1.6: piles on a binary TCP protocol beside the OCPP chargers."""
