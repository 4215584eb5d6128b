"""Primitive estimators: SRAM (CACTI fit), DRAM, 28 nm logic, CSV tables, user plug-ins."""
