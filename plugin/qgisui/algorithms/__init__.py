"""Processing algorithms of the ``copgen`` provider."""


def algorithm_classes():
    from .environment import CheckInstallationAlgorithm

    return [CheckInstallationAlgorithm]
