"""P5's baseline task: django-q2 runs it and it does nothing. Never used by the app."""


def noop():
    return None
