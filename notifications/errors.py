"""Domain errors of the notifications app; ``message`` is written for the person who tried."""


class NotificationError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class NotAWorkspaceAdmin(NotificationError):
    pass


class InvalidEndpoint(NotificationError):
    pass
