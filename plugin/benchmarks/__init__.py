"""What the ``bench`` command needs beyond the engine, shipped with the plugin so that
``python -m plugin bench`` works from an installed plugin, not only from the source checkout."""
