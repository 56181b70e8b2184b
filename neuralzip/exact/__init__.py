"""Exact integer inference shared by the learned models (so a file decodes on any machine).

Everything here turns integer inputs into integer outputs with integer (or
integer-valued float) arithmetic whose every partial sum is exact, and looks
transcendental functions up in tables shipped with the weights."""
