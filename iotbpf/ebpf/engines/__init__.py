"""The engines that run a program: the VM front (vm), the closure interpreter (interp), the compact
interpreter (compact), the compiler to Python (compiler/) and what they share at run time (frames)."""
