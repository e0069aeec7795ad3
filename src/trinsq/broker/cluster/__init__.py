"""The broker in a cluster: registering with every registry (nsqlookupd) over protocol V1."""
