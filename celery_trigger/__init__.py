"""celery-trigger"""
