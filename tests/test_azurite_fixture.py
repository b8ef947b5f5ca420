"""The Azurite that tests use is real: blobs, queues and tables answer."""

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient


def test_blob_queue_table_roundtrip(azurite_conn: str, unique: str) -> None:
    blobs = BlobServiceClient.from_connection_string(azurite_conn)
    container = blobs.create_container(f"c{unique}")
    container.upload_blob("a/b.bin", b"\x00\x01")
    assert container.download_blob("a/b.bin").readall() == b"\x00\x01"

    queue = QueueServiceClient.from_connection_string(azurite_conn).create_queue(f"q{unique}")
    queue.send_message("hello")
    assert [m.content for m in queue.receive_messages()] == ["hello"]

    table = TableServiceClient.from_connection_string(azurite_conn).create_table(f"t{unique}")
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
    assert table.get_entity("p", "r")["v"] == 1
