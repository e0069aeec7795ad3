"""trinsq.testing: test NSQ applications against real, in-process trinsq brokers and registries.

Installing trinsq registers a pytest plugin (entry point ``pytest11``, module
:mod:`trinsq.testing._plugin`) whose fixtures serve pytest-trio tests:

- ``trinsq_broker``: a broker of the test's own, on 127.0.0.1 with OS-chosen ports and a
  temporary data directory, stopped gracefully after the test;
- ``trinsq_registry``: a registry likewise;
- ``trinsq_cluster``: registries, then brokers registered with all of them
  (:func:`trinsq.open_cluster`);
- ``trinsq_broker_factory``: ``await start(**options)`` starts more brokers, each stopped
  gracefully after the test;
- ``trinsq_producer``: a :mod:`trinsq.client` producer connected to ``trinsq_broker``.

For test suites that are not Trio, ``trinsq_nsqd`` is one broker process per session
(:func:`start_broker_process`), emptied for each test.

Options come from markers: ``@pytest.mark.trinsq(msg_timeout=5)`` for the brokers (the
broker fixtures and every broker of the cluster), ``@pytest.mark.trinsq_registry(...)`` for the
registries, ``@pytest.mark.trinsq_cluster(brokers=3, registries=2)`` for the cluster's shape.
Every test gets fresh servers: starting one in-process costs a few milliseconds.
"""

from __future__ import annotations

from trinsq.testing._process import BrokerProcess, start_broker_process

__all__ = ["BrokerProcess", "start_broker_process"]
