"""trinsq's NSQ client for Trio programs."""
