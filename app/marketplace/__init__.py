"""The other side of the wire: the marketplace's open APIs, a client for them and a mock of them."""
