"""Processing algorithms of the ``copgen`` provider."""

from ... import dependencies


def algorithm_classes():
    from .environment import CheckInstallationAlgorithm

    if not all(status.ok for status in dependencies.check()):
        # The others import the engine's packages; Check installation says which are missing.
        return [CheckInstallationAlgorithm]

    from .cells import CellsAlgorithm
    from .chain import ChainAlgorithm
    from .chain_physical import PhysicalChainAlgorithm
    from .combinations import CombinationsAlgorithm
    from .combinations_physical import PhysicalCombinationsAlgorithm
    from .generate import GenerateAlgorithm
    from .generate_physical import GeneratePhysicalAlgorithm
    from .install_model import InstallModelAlgorithm
    from .prepare import PrepareAlgorithm
    from .prepare_physical import PreparePhysicalAlgorithm

    return [
        GenerateAlgorithm,
        GeneratePhysicalAlgorithm,
        PrepareAlgorithm,
        PreparePhysicalAlgorithm,
        InstallModelAlgorithm,
        ChainAlgorithm,
        CombinationsAlgorithm,
        PhysicalChainAlgorithm,
        PhysicalCombinationsAlgorithm,
        CellsAlgorithm,
        CheckInstallationAlgorithm,
    ]
