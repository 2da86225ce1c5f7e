-- OCPP 2.0.1 transactions (firmware/ocpp/v201/transactions.py): the seqNo of the
-- next TransactionEvent of each transaction, advanced in the database
-- transaction that queues the event, and the prefix that makes the station's
-- transactionIds unique across a replaced database.
CREATE TABLE v201_transactions (
    local_id INTEGER PRIMARY KEY,
    next_seq_no INTEGER NOT NULL
);
CREATE TABLE v201_station (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    tx_prefix TEXT NOT NULL
);
