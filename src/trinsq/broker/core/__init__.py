"""The broker's model, free of I/O: the topic/channel graph, messages, clients and what auth
allowed them, end-to-end latency quantiles, and the stats snapshot built from them."""
