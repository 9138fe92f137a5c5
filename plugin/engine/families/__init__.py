"""Model families: everything that differs between COP-GEN-Beta and COP-GEN lives in one
sub-package per family (its modality registry, shapes, pre/post-processing, graph builders,
model class); the rest of the engine asks the family instead of branching on its name."""
