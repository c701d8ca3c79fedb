"""The only place that reads the environment and TOML: the settings and one parser per section."""
