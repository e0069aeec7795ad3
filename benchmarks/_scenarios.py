"""Every scenario, by name: each drives load-generator processes against a Target and reports.

``_throughput`` (writer, reader, pair, pub, consumers), ``_httppub``, ``_latency``,
``_clientpub`` (client-pub: the Python clients' producers), ``_clientsub`` (client-sub: their
consumers), ``_resources`` (rss-queued,
idle), ``_memrequest`` (mem-request), ``_fairness``, ``_topics`` (many topics and channels),
``_registry`` (lookup, against a registry) and ``_gencheck`` (the generators alone) hold them.
"""

from __future__ import annotations

from benchmarks._clientpub import CLIENTS as PUB_CLIENTS
from benchmarks._clientpub import client_pub
from benchmarks._clientsub import CLIENTS as SUB_CLIENTS
from benchmarks._clientsub import client_sub
from benchmarks._common import CPUS
from benchmarks._fairness import fairness
from benchmarks._gencheck import generator_check
from benchmarks._httppub import http_pub
from benchmarks._latency import latency
from benchmarks._memrequest import CASES as MEM_REQUEST_CASES
from benchmarks._memrequest import mem_request
from benchmarks._registry import ENDPOINTS as LOOKUP_ENDPOINTS
from benchmarks._registry import lookup
from benchmarks._resources import idle, rss_queued
from benchmarks._throughput import consumers, fill, pair, pub, reader, writer
from benchmarks._topics import topics

__all__ = [
    "CPUS",
    "LOOKUP_ENDPOINTS",
    "MEM_REQUEST_CASES",
    "PUB_CLIENTS",
    "SUB_CLIENTS",
    "client_pub",
    "client_sub",
    "consumers",
    "fairness",
    "fill",
    "generator_check",
    "http_pub",
    "idle",
    "latency",
    "lookup",
    "mem_request",
    "pair",
    "pub",
    "reader",
    "rss_queued",
    "topics",
    "writer",
]
