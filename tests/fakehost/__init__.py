"""Kept only while bench/ still imports the site from here (it moved to sandbox/site/)."""
