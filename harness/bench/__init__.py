"""Timers, memory and energy meters, and the timed-inference runner."""
