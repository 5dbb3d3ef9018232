"""De-identification of DICOM headers (DICOM PS3.15 Annex E, Basic Profile).

The ingestion functions never return a DICOM dataset: they copy out pixels and
geometry only, so identifiers cannot leak through them. :func:`deidentify` is for the
one place that must keep a header (e.g. archiving a shot): it removes every attribute
of :data:`BASIC_PROFILE_KEYWORDS`, every private tag and every UID-valued element
(VR ``UI``, except the SOP class and transfer syntax, which name formats, not people).
:func:`pseudonym` gives a keyed hash for linking shots of one study without the ID.
"""

from __future__ import annotations

import hashlib
import hmac

import pydicom

#: Attributes of the PS3.15 Table E.1-1 Basic Application Level Confidentiality Profile
#: that can identify a patient, a visit, staff or an institution (by keyword).
BASIC_PROFILE_KEYWORDS: tuple[str, ...] = (
    "AccessionNumber",
    "AcquisitionDate",
    "AcquisitionDateTime",
    "AcquisitionTime",
    "AdditionalPatientHistory",
    "AdmissionID",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "Arbitrary",
    "AuthorObserverSequence",
    "BranchOfService",
    "ConsultingPhysicianName",
    "ContentCreatorName",
    "ContentDate",
    "ContentTime",
    "ContrastBolusAgent",
    "CountryOfResidence",
    "CurrentPatientLocation",
    "CurveDate",
    "CurveTime",
    "DerivationDescription",
    "DetectorID",
    "DeviceSerialNumber",
    "DeviceUID",
    "EthnicGroup",
    "FillerOrderNumberImagingServiceRequest",
    "FrameOfReferenceUID",
    "GantryID",
    "GeneratorID",
    "IconImageSequence",
    "ImageComments",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "InstanceCreatorUID",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionName",
    "InsurancePlanIdentification",
    "IssuerOfPatientID",
    "MedicalAlerts",
    "MedicalRecordLocator",
    "MilitaryRank",
    "ModifiedAttributesSequence",
    "NameOfPhysiciansReadingStudy",
    "Occupation",
    "OperatorsName",
    "OriginalAttributesSequence",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "OverlayDate",
    "OverlayTime",
    "PatientAddress",
    "PatientAge",
    "PatientBirthDate",
    "PatientBirthName",
    "PatientBirthTime",
    "PatientComments",
    "PatientID",
    "PatientInsurancePlanCodeSequence",
    "PatientMotherBirthName",
    "PatientName",
    "PatientReligiousPreference",
    "PatientSex",
    "PatientSexNeutered",
    "PatientSize",
    "PatientState",
    "PatientTelephoneNumbers",
    "PatientWeight",
    "PatientTransportArrangements",
    "PerformedLocation",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepID",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformingPhysicianName",
    "PersonName",
    "PhysiciansOfRecord",
    "PlacerOrderNumberImagingServiceRequest",
    "PregnancyStatus",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "ReferringPhysicianAddress",
    "ReferringPhysicianName",
    "ReferringPhysicianTelephoneNumbers",
    "RegionOfResidence",
    "RequestAttributesSequence",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "RequestingPhysician",
    "RequestingService",
    "ResponsibleOrganization",
    "ResponsiblePerson",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
    "SeriesDate",
    "SeriesDescription",
    "SeriesTime",
    "SmokingStatus",
    "SourceImageSequence",
    "SpecialNeeds",
    "StationName",
    "StudyComments",
    "StudyDate",
    "StudyDescription",
    "StudyID",
    "StudyTime",
    "TextComments",
    "TextString",
    "TimezoneOffsetFromUTC",
    "VerifyingObserverName",
    "VisitComments",
)

#: UID-valued attributes that describe formats, not people or studies (kept).
_FORMAT_UIDS = ("SOPClassUID", "TransferSyntaxUID", "MediaStorageSOPClassUID")


def deidentify(ds: pydicom.Dataset) -> pydicom.Dataset:
    """A copy of ``ds`` without Basic Profile identifiers, private tags and instance UIDs.

    Nested sequences are cleaned recursively. The file meta group is dropped (it repeats
    the SOP instance UID).
    """
    out = pydicom.Dataset()
    for elem in ds:
        kw = elem.keyword
        if elem.tag.is_private or kw in BASIC_PROFILE_KEYWORDS:
            continue
        if elem.VR == "UI" and kw not in _FORMAT_UIDS:
            continue
        if elem.VR == "PN":  # any other person name (e.g. an unlisted role)
            continue
        if elem.VR == "SQ":
            elem = pydicom.DataElement(elem.tag, "SQ", [deidentify(item) for item in elem.value])
        out.add(elem)
    return out


def pseudonym(ds: pydicom.Dataset, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256, 16 hex digits) of PatientID + StudyInstanceUID.

    Without the site's ``key`` the hash cannot be recomputed from a guessed ID, so it
    links shots of one study without revealing (or allowing a lookup of) the patient.

    Raises:
        ValueError: an empty key.
    """
    if not key:
        raise ValueError("pseudonym needs a non-empty secret key")
    msg = f"{ds.get('PatientID', '')}|{ds.get('StudyInstanceUID', '')}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:16]
