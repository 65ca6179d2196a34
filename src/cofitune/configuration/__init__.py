"""The configuration layer: the config's checks before any job, each naming its key, file and line
(`checks`), and the sections parsed once into the settings their readers take (`sections`)."""
