"""Domain services of the product: each takes a Session and a tenant id, never Flask globals."""
