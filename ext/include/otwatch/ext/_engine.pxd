# Declarations for the compiled engine only (Cython reads this file when it compiles
# ext/engine.py into otwatch.ext._engine; the pure path never sees it).

# The C-level entry of a compiled protocol kernel, as returned by its core's c_feed():
# (core, side, buffer, start, end, ts, frame, out) -> FEED_OK / FEED_VIOLATION.
ctypedef int (*kernel_feed_fn)(object, int, const unsigned char *, Py_ssize_t, Py_ssize_t, double, long long, list) except? -99
