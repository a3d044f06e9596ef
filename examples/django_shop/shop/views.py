import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Order
from .tasks import approve_order


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    """Create an order and ask for its approval once the order is committed."""
    item = json.loads(request.body or b"{}").get("item", "")
    with transaction.atomic():
        order = Order.objects.create(item=item)
        approve_order.trigger_on_commit({"order_id": order.pk}, tags=[f"order:{order.pk}"])
        if not item:
            transaction.set_rollback(True)  # nothing ordered: no order, no approval run
            return JsonResponse({"error": "item is required"}, status=400)
    return JsonResponse({"order_id": order.pk}, status=201)
