"""What runs leave and what is made from it: records, leaderboards, significance, compare."""
