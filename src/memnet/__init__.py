"""memnet: a reproducible replication of Memory Networks (Ruiz & Gupta, 2024, arXiv:2409.17282).

The paper's full text is not public; the model here is a reconstruction (see the README).
"""

__version__ = "0.1.0"
