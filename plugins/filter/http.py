"""bearer_header: the HTTP headers that carry a token ({} without one), for the roles' uri calls (the hub's token,
the router's API key). The modules in library/ have theirs in module_utils/sglang_http.py."""


def bearer_header(token):
    token = "" if token is None else str(token)  # str() also opens a vaulted value
    return {"Authorization": f"Bearer {token}"} if token else {}


class FilterModule:
    def filters(self):
        return {"bearer_header": bearer_header}
