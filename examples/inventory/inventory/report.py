from .store import Store


def format_cents(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


def summary(store: Store) -> str:
    lines = []
    for sku in sorted(store.items):
        item = store.items[sku]
        lines.append(f"{sku:<8} {item.name:<20} {item.quantity:>5} x {format_cents(item.price_cents)}")
    lines.append(f"total value: {format_cents(store.total_value_cents())}")
    return "\n".join(lines)
