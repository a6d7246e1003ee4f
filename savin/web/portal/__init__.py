"""The portal: `savin web`, a process apart from the worker."""
