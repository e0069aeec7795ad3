"""The TCP side: one V2 client connection (reader and pump), its stream upgrades (TLS, snappy,
deflate) and its AUTH against nsq auth servers."""
