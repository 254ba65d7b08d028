"""semrl: semantic-reward RL for low-resource languages, with the alignment tax measured."""

__version__ = "0.1.0"
