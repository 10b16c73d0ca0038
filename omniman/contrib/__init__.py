"""Optional apps built on the kernel's extension points (:mod:`omniman.extensions`).
The kernel and ``omniman_api`` never import them."""
