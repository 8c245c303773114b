from django.urls import path

from . import views

app_name = "intake"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("my-day/", views.my_day, name="my_day"),
    path("profile/", views.profile, name="profile"),
    path("profile/<int:user_id>/", views.profile, name="profile_of"),
    path("profiles/", views.profiles, name="profiles"),
    path("interactions/", views.interaction_list, name="interaction_list"),
    path("overview/", views.overview, name="overview"),
    path(
        "interactions/export.csv",
        views.interaction_export,
        name="interaction_export",
    ),
    path("interactions/new/", views.interaction_create, name="interaction_create"),
    path(
        "interactions/new/validate/",
        views.interaction_validate,
        name="interaction_validate",
    ),
    path(
        "interactions/<uuid:record_id>/",
        views.interaction_detail,
        name="interaction_detail",
    ),
    path(
        "interactions/<uuid:record_id>/retry/",
        views.interaction_retry,
        name="interaction_retry",
    ),
    path(
        "interactions/<uuid:record_id>/refresh/",
        views.interaction_refresh,
        name="interaction_refresh",
    ),
    path(
        "interactions/<uuid:record_id>/end/",
        views.interaction_end,
        name="interaction_end",
    ),
    path(
        "interactions/<uuid:record_id>/edit/",
        views.interaction_edit,
        name="interaction_edit",
    ),
    path(
        "interactions/<uuid:record_id>/delete/",
        views.interaction_delete,
        name="interaction_delete",
    ),
    path(
        "interactions/<uuid:record_id>/recording/",
        views.recording_start,
        name="recording_start",
    ),
    path(
        "interactions/<uuid:record_id>/recording/<uuid:recording_id>/token/",
        views.recording_token,
        name="recording_token",
    ),
    path(
        "interactions/<uuid:record_id>/recording/<uuid:recording_id>/",
        views.recording_report,
        name="recording_report",
    ),
    path(
        "interactions/<uuid:record_id>/stream-url/",
        views.stream_url,
        name="stream_url",
    ),
]
