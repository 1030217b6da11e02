"""F15: the 大病保险承办机构 (critical-illness insurer), behind ``port.InsurerPort``."""
