"""marshmallow schemas: the contract of every JSON API request body."""
