"""The Linux helpers the runtime, the daemon and the image store share: the ctypes wrappers of
libc and libseccomp (the project's only foreign-function code), atomic file replacement,
symlink-safe path resolution inside a root, running code in another network namespace, and
detaching every mount at a path. A leaf: it imports nothing else of the project."""
