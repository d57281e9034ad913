"""The demo's orders: what the ticket job type's ``lookup_order`` tool reads."""

ORDERS = {
    "A-1042": {
        "order_reference": "A-1042",
        "customer_email": "dana@example.test",
        "items": ["Trail running shoes, size 41"],
        "total_usd": "89.00",
        "status": "delivered",
        "delivered_on": "2026-11-28",
        "carrier_note": "Left at the front door.",
    },
    "A-1043": {
        "order_reference": "A-1043",
        "customer_email": "sam@example.test",
        "items": ["Rain jacket, M", "Wool socks (3 pairs)"],
        "total_usd": "142.50",
        "status": "in transit",
        "delivered_on": None,
        "carrier_note": "Delayed at the regional hub; new estimate 2026-12-08.",
    },
    "A-1044": {
        "order_reference": "A-1044",
        "customer_email": "lee@example.test",
        "items": ["Camping stove"],
        "total_usd": "59.99",
        "status": "returned",
        "delivered_on": "2026-11-20",
        "carrier_note": "Return received 2026-11-30; refund pending.",
    },
}


# What the carrier reports for each demo order: what ``track_parcel`` reads.
TRACKING = {
    "A-1042": [
        {"at": "2026-11-26 09:12", "where": "Leipzig hub", "event": "Picked up"},
        {"at": "2026-11-28 14:40", "where": "Berlin", "event": "Delivered, left at the door"},
    ],
    "A-1043": [
        {"at": "2026-12-01 17:05", "where": "Rotterdam hub", "event": "Picked up"},
        {"at": "2026-12-03 08:30", "where": "Regional hub", "event": "Held: sorting backlog"},
    ],
    "A-1044": [
        {"at": "2026-11-18 10:00", "where": "Lyon", "event": "Picked up"},
        {"at": "2026-11-20 12:15", "where": "Lyon", "event": "Delivered"},
        {"at": "2026-11-30 16:45", "where": "Warehouse", "event": "Return received"},
    ],
}
