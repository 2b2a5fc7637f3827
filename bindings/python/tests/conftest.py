import os
import sys

# Run against the checkout's package (ctest sets DISTRI_LIBRARY to the built libdistri).
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
