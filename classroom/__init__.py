"""classroom package."""
