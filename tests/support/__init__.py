"""Helpers the tests import (``tests`` is on pytest's pythonpath): warehouses, servers, fixtures' data."""
