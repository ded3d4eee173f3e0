"""Media helpers below both the server's media layer and the Python client (no HTTP, no server
state): the frame stamp that pairs a received frame with the frame it was made from."""
