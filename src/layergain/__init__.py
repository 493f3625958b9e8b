"""layergain: how much does each ImageNet-pretrained layer give beyond random weights?"""

__version__ = "0.1.0"
