"""Tests of the outbound host client against the fake Atlassian site."""
