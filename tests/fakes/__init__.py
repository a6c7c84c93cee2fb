"""In-process fakes of third-party services (e.g. the OpenAI API) that tests point the gateway at."""
