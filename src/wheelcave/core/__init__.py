"""The pure core: names, filenames, core metadata, page models and renderers. No I/O."""
