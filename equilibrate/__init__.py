"""Equilibrate: the library behind the executable book on balancing helpfulness and safety.

It implements, at teaching scale and at full scale, the two ideas of *Equilibrate RLHF*
(Tan et al., arXiv 2502.11555): fine-grained data-centric categorization of safety data (FDC)
and adaptive message-wise alignment (AMA), plus the over-safety diagnosis and the evaluation
that show why they matter. Submodules are imported on demand so that ``import equilibrate``
stays cheap.
"""

__version__ = "0.1.0"
