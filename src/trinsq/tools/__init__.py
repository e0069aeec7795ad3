"""The NSQ command-line tools rebuilt on trinsq: ``trinsq stat`` (nsq_stat), and the core of
``trinsq to-file`` (nsq_to_file). Each tool keeps its protocol and bookkeeping sans-IO, under a
thin trio layer."""
