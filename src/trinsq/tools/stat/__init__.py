"""``trinsq stat``: nsq_stat v1.3.0, the periodic table of one channel's totals across the
nsqd nodes that carry its topic."""
