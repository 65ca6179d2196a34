"""The configuration layer: the config's checks before any job, each naming its key, file and line
(`checks`), the sections parsed once into the settings their readers take (`sections`), and the
evaluation settings the rules pass (`evaluation`)."""
